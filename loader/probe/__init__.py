"""The vision probe: test images, answer checks, the client, performance samples.

``loader.probe`` is a documented import path (docs/api.md): the names of
:mod:`loader.probe.vision` are re-exported here.
"""

from loader.probe.vision import *  # noqa: F403
from loader.probe.vision import ProbeResult, run_vision_probe  # noqa: F401
