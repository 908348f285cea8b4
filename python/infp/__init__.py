"""infp: industrial video anomaly detection (INFP, IJCAI 2025) on libinfp.

The heavy lifting happens in libinfp.so, a Swift library with a C API (include/infp.h); this
package loads it with ctypes (see ``infp._lib`` for where it looks) and checks at import that
its version matches the package's.

Modules:
    infp.Model: the INFP network — create, load, save, fit, score, predict.
    infp.data: synthetic production lines, the IPAD loader, model inputs and clips, raw video files.
    infp.metrics: frame-level AUC (the field's protocol), ROC AUC and curve.
    infp.ops: single operations (conv2d, rfft2, irfft2 and their gradients) on NumPy arrays.
    infp.stream: live streams (one frame at a time, calibrated alerts) and the resize they use.
    infp.video: video files (PyAV, imported when a file is read), frame folders, label files;
        infp.data.load_video / iter_video / load_labels are these.
    infp.lowlight: darken test footage by levels and measure the frame AUC at each.
    infp.distributed: many lines as Ray tasks, camera fleets as Ray actors (import it
        explicitly; needs Ray).
"""

from ._lib import InfpError, LibraryError, check_version as _check_version
from ._lib import lib as _c, library_path

__version__ = "0.1.0"

#: Version string reported by the loaded libinfp.so.
library_version: str = _c.infp_version().decode()
_check_version(library_version, __version__, library_path)

from . import data, lowlight, metrics, ops, stream, video  # noqa: E402  (after the version check)
from .model import Model  # noqa: E402
from .stream import Stream, StreamResult  # noqa: E402

__all__ = ["InfpError", "LibraryError", "Model", "Stream", "StreamResult", "data", "stream", "metrics", "ops", "library_path", "library_version",
           "__version__"]
