"""One TensorFlow Lite model from `services/renderer/models`, loaded once per process and run under a lock.

The models are MediaPipe's (see `models/README.md`), run with `ai-edge-litert`'s interpreter, so the project needs
neither mediapipe (which pins protobuf < 5 and replaces OpenCV) nor any download at run time. An interpreter is not
safe to run from two threads at once; each model has its own lock, and one call takes milliseconds.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
from ai_edge_litert.interpreter import Interpreter

MODELS_DIR: Final = Path(__file__).parent / "models"

Tensor = npt.NDArray[np.float32]


class TfliteModel:
    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise RuntimeError(f"face model file {path} is missing: reinstall adagent (it ships the .tflite files)")
        # One thread each: the renderer already runs clips in parallel on few cores.
        self._interpreter = Interpreter(model_path=str(path), num_threads=1)
        self._interpreter.allocate_tensors()
        inputs = self._interpreter.get_input_details()
        self._input = int(inputs[0]["index"])
        self.input_shape: tuple[int, ...] = tuple(int(d) for d in inputs[0]["shape"])
        self._outputs = {str(d["name"]): int(d["index"]) for d in self._interpreter.get_output_details()}
        self._lock = threading.Lock()

    def run(self, tensor: Tensor) -> dict[str, Tensor]:
        """The model's outputs by tensor name for one input batch shaped like `input_shape`."""
        with self._lock:
            self._interpreter.set_tensor(self._input, np.ascontiguousarray(tensor, dtype=np.float32))
            self._interpreter.invoke()
            return {
                name: np.array(self._interpreter.get_tensor(index), dtype=np.float32)
                for name, index in self._outputs.items()
            }


_loaded: dict[str, TfliteModel] = {}
_loading = threading.Lock()


def model(name: str) -> TfliteModel:
    """The model `models/NAME`, loaded on first use."""
    with _loading:
        if name not in _loaded:
            _loaded[name] = TfliteModel(MODELS_DIR / name)
        return _loaded[name]
