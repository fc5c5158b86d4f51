"""Export and import formats of the annotation queue: pure codecs, no files.

``monitor/queue`` writes and reads the files; this package turns queue items
(:class:`~sampling.formats.records.ExportImage`) into documents and returned documents
into :class:`~sampling.formats.records.ReturnedImage` records:

- :mod:`sampling.formats.coco_json`: COCO instances JSON (compressed RLE).
- :mod:`sampling.formats.labelstudio`: Label Studio tasks with brush-RLE predictions, the
  labelling config, and Label Studio's JSON export (brush and polygon results).
- :mod:`sampling.formats.cvat`: CVAT for images 1.1 XML (box RLE masks, polygons).
- :mod:`sampling.formats.mask_codec`: COCO RLE and polygons to and from mask arrays.
"""

from __future__ import annotations

from sampling.formats.coco_json import build_coco, parse_coco
from sampling.formats.cvat import build_cvat_xml, cvat_mask_decode, cvat_mask_encode, parse_cvat_xml
from sampling.formats.labelstudio import (
    brush_decode,
    brush_encode,
    build_tasks,
    labeling_config,
    parse_export,
)
from sampling.formats.records import (
    ExportImage,
    ExportMask,
    FormatError,
    ReturnedAnnotation,
    ReturnedImage,
)

__all__ = [
    "ExportImage",
    "ExportMask",
    "FormatError",
    "ReturnedAnnotation",
    "ReturnedImage",
    "brush_decode",
    "brush_encode",
    "build_coco",
    "build_cvat_xml",
    "build_tasks",
    "cvat_mask_decode",
    "cvat_mask_encode",
    "labeling_config",
    "parse_coco",
    "parse_cvat_xml",
    "parse_export",
]
