"""A session's inputs and outputs kept at fixed addresses, as ONNX Runtime's CUDA graphs need.

With ``enable_cuda_graph`` the CUDA provider records every kernel of a run
once and then replays the recording: one launch instead of one per node,
which is what a small model at a small batch spends most of its time on (on
an H100 a ResNet-10 call took about 1 ms, its arithmetic a fraction of that).
The recording holds the addresses of its inputs and outputs, so each run must
read from and write to the same buffers: new faces are copied into the input
buffer (``update_inplace``), results copied out of the output buffers. Shapes
must stay fixed too, which one session per batch bucket already gives
(``OnnxModel.session_for``).
"""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from .errors import BiasMirrorError
from .runtime import device_of

NP_TYPES = {"tensor(uint8)": np.uint8, "tensor(float)": np.float32, "tensor(float16)": np.float16}


def fixed_shape(arg: ort.NodeArg, batch: int) -> list[int]:
    """The argument's shape with its first (batch) axis set; every other axis must be a number."""
    dims = list(arg.shape)
    if not dims or any(not isinstance(d, int) for d in dims[1:]):
        raise BiasMirrorError(f"'{arg.name}' has shape {dims}: fixed buffers need every axis but the batch fixed")
    return [batch, *dims[1:]]


def bound_run(session: ort.InferenceSession, binding: ort.IOBinding, options: ort.RunOptions | None) -> None:
    """``session`` run on ``binding`` with ``options`` (a registered run's, so that a stop ends it and ORT logs
    nothing of a failure raised anyway). ORT's binding raises a failed status as a bare RuntimeError ("Error in
    execution: …"), where a plain run raises its status class: raised as that, so that explained_failures names
    the model (a stop's end and a GPU out of memory had reached the app as "RuntimeError (details in the log)")."""
    try:
        session.run_with_iobinding(binding, options)
    except RuntimeError as exc:
        raise ort_state.Fail(str(exc)) from exc


class FixedBinding:
    """Buffers for one session at one batch size, on the device the session runs on, bound once."""

    def __init__(self, session: ort.InferenceSession, batch: int, device_id: int = 0):
        self.session = session
        device = device_of(session.get_providers()[0])
        self.device = device

        def buffer(arg: ort.NodeArg) -> ort.OrtValue:
            if arg.type not in NP_TYPES:
                raise BiasMirrorError(f"'{arg.name}' is {arg.type}: no fixed buffer for that type")
            return ort.OrtValue.ortvalue_from_shape_and_type(fixed_shape(arg, batch), NP_TYPES[arg.type], device, device_id)

        self.inputs = {i.name: buffer(i) for i in session.get_inputs()}
        self.outputs = {o.name: buffer(o) for o in session.get_outputs()}
        self.binding = session.io_binding()
        for name, value in self.inputs.items():
            self.binding.bind_ortvalue_input(name, value)
        for name, value in self.outputs.items():
            self.binding.bind_ortvalue_output(name, value)

    def run(self, feeds: dict[str, np.ndarray], options: ort.RunOptions | None = None) -> list[np.ndarray]:
        """The outputs, in the session's order, as fresh host arrays (the buffers are overwritten next run), run
        with ``options`` (``bound_run``)."""
        for name, value in feeds.items():
            self.inputs[name].update_inplace(np.ascontiguousarray(value))
        bound_run(self.session, self.binding, options)
        # from the device, numpy() copies; on the CPU it is a view of the buffer the next run overwrites
        return [value.numpy().copy() if self.device == "cpu" else value.numpy() for value in self.outputs.values()]
