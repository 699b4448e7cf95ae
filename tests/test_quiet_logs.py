"""MediaPipe's native log lines stay out of notebook output; Python warnings and errors still show."""

from __future__ import annotations

import os
import subprocess
import sys

from dancenow_utils.pose.mediapipe_backend import quiet_native_logs
from tests.conftest import ROOT

NOISE = (b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
         b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
         b"W0000 00:00:1795552684.399313   12740 inference_feedback_manager.cc:114] Feedback manager requires...\n"
         b"I1124 20:31:02.123456    4242 gl_context.cc:357] GL version: 3.2\n")
ERROR = b"E0000 00:00:1795552684.5   12740 calculator_graph.cc:887] INVALID_ARGUMENT: a real problem\n"


def test_native_noise_is_dropped_and_the_rest_replayed(capfd):
    with quiet_native_logs():
        os.write(2, NOISE + ERROR)
        with quiet_native_logs():  # re-entrant
            os.write(2, NOISE)
        print("python stderr", file=sys.stderr)
    err = capfd.readouterr().err
    assert "XNNPACK" not in err and "Feedback manager" not in err and "GL version" not in err
    assert "INVALID_ARGUMENT: a real problem" in err and "python stderr" in err
    os.write(2, b"after the block\n")
    assert capfd.readouterr().err == "after the block\n"  # fd 2 is restored


def test_estimator_is_quiet_without_any_environment_variable():
    """A fresh interpreter, as a notebook kernel is: no GLOG_minloglevel, no redirection by run_notebooks."""
    code = ("import numpy as np, warnings\n"
            "from dancenow_utils.pose.mediapipe_backend import MediaPipeEstimator\n"
            "with MediaPipeEstimator(face=False, hands=False, video=True, count_people=True) as est:\n"
            "    for _ in range(2):\n"
            "        est(np.zeros((96, 96, 3), np.uint8))\n"
            "warnings.warn('still visible')\n"
            "raise SystemExit('python error visible')\n")
    env = {k: v for k, v in os.environ.items() if k not in ("GLOG_minloglevel", "TF_CPP_MIN_LOG_LEVEL")}
    env["PYTHONPATH"] = str(ROOT)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 1
    assert "XNNPACK" not in run.stderr and "W0000" not in run.stderr and "absl::InitializeLog" not in run.stderr, \
        run.stderr
    assert "still visible" in run.stderr and "python error visible" in run.stderr
