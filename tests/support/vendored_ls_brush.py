# Vendored from label-studio-sdk 2.1.2 (PyPI wheel), label_studio_sdk/converter/brush.py:
# InputStream, access_bit, bytes2bit, decode_rle, bits2byte, base_rle_encode, encode_rle,
# mask2rle, unchanged except for formatting, type hints and dropping the print option.
# Used by the tests only, as Label Studio's own brush decoder and encoder: the package
# itself pulls in opencv, nltk and a code generator, too heavy for a test dependency.
#
# Copyright 2019-2025 Heartex, Inc. (HumanSignal)
# Licensed under the Apache License, Version 2.0 (the "License"); you may not use this file
# except in compliance with the License. You may obtain a copy of the License at
#     http://www.apache.org/licenses/LICENSE-2.0
# Unless required by applicable law or agreed to in writing, software distributed under the
# License is distributed on an "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND,
# either express or implied. See the License for the specific language governing
# permissions and limitations under the License.
# The run-length scheme is from thi.ng/umbrella's rle-pack (Apache-2.0).
"""Label Studio's own brush RLE encoder and decoder (label-studio-sdk 2.1.2), vendored."""

from __future__ import annotations

from typing import Any

import numpy as np


class InputStream:
    def __init__(self, data: str) -> None:
        self.data = data
        self.i = 0

    def read(self, size: int) -> int:
        out = self.data[self.i : self.i + size]
        self.i += size
        return int(out, 2)


def access_bit(data: Any, num: int) -> int:
    """from bytes array to bits by num position"""
    base = int(num // 8)
    shift = 7 - int(num % 8)
    return int((data[base] & (1 << shift)) >> shift)


def bytes2bit(data: Any) -> str:
    """get bit string from bytes data"""
    return "".join([str(access_bit(data, i)) for i in range(len(data) * 8)])


def decode_rle(rle: Any) -> Any:
    """from LS RLE to numpy uint8 3d image [width, height, channel]"""
    input = InputStream(bytes2bit(rle))
    num = input.read(32)
    word_size = input.read(5) + 1
    rle_sizes = [input.read(4) + 1 for _ in range(4)]

    i = 0
    out = np.zeros(num, dtype=np.uint8)
    while i < num:
        x = input.read(1)
        j = i + 1 + input.read(rle_sizes[input.read(2)])
        if x:
            val = input.read(word_size)
            out[i:j] = val
            i = j
        else:
            while i < j:
                val = input.read(word_size)
                out[i] = val
                i += 1
    return out


def bits2byte(arr_str: str, n: int = 8) -> list[int]:
    """Convert bits back to byte"""
    rle = []
    numbers = [arr_str[i : i + n] for i in range(0, len(arr_str), n)]
    for i in numbers:
        rle.append(int(i, 2))
    return rle


def base_rle_encode(inarray: Any) -> Any:
    """run length encoding. Partial credit to R rle function.
    Multi datatype arrays catered for including non Numpy
    returns: tuple (runlengths, startpositions, values)"""
    ia = np.asarray(inarray)  # force numpy
    n = len(ia)
    if n == 0:
        return None, None, None
    else:
        y = ia[1:] != ia[:-1]  # pairwise unequal (string safe)
        i = np.append(np.where(y), n - 1)  # must include last element posi
        z = np.diff(np.append(-1, i))  # run lengths
        p = np.cumsum(np.append(0, z))[:-1]  # positions
        return z, p, ia[i]


def encode_rle(arr: Any, wordsize: int = 8, rle_sizes: Any = (3, 4, 8, 16)) -> list[int]:
    """Encode a 1d array to rle"""
    num = len(arr)
    numbits = f"{num:032b}"
    wordsizebits = f"{wordsize - 1:05b}"
    rle_bits = "".join([f"{x - 1:04b}" for x in rle_sizes])
    base_str = numbits + wordsizebits + rle_bits
    out_str = ""
    for length_reeks, _p, value in zip(*base_rle_encode(arr), strict=True):
        if length_reeks == 1:
            out_str += "0"
            out_str += "00"
            out_str += "000"
            out_str += f"{value:08b}"
        elif length_reeks > 1:
            if length_reeks <= 8:
                out_str += "1"
                out_str += "00"
                out_str += f"{length_reeks - 1:03b}"
                out_str += f"{value:08b}"
            elif 8 < length_reeks <= 16:
                out_str += "1"
                out_str += "01"
                out_str += f"{length_reeks - 1:04b}"
                out_str += f"{value:08b}"
            elif 16 < length_reeks <= 256:
                out_str += "1"
                out_str += "10"
                out_str += f"{length_reeks - 1:08b}"
                out_str += f"{value:08b}"
            else:
                length_temp = length_reeks
                while length_temp > 2**16:
                    out_str += "1"
                    out_str += "11"
                    out_str += f"{2**16 - 1:016b}"
                    out_str += f"{value:08b}"
                    length_temp -= 2**16
                out_str += "1"
                out_str += "11"
                out_str += f"{length_temp - 1:016b}"
                out_str += f"{value:08b}"
    nzfill = 8 - len(base_str + out_str) % 8
    total_str = base_str + out_str
    total_str = total_str + nzfill * "0"
    rle = bits2byte(total_str)
    return rle


def mask2rle(mask: Any) -> list[int]:
    """Convert mask to RLE"""
    assert len(mask.shape) == 2, "mask must be 2D np.array"
    assert mask.dtype == np.uint8 or mask.dtype == int, "mask must be uint8 or int"
    array = mask.ravel()
    array = np.repeat(array, 4)  # must be 4 channels
    rle = encode_rle(array)
    return rle
