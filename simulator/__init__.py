"""A local stand-in for web.whatsapp.com: the login page in a real browser, plus "the phone".

Run it alone with ``wasup simulator``; docs/simulator.md describes the page and the control API.
"""

from simulator._answers import AccountCounters, DeviceInfo, Snapshot
from simulator._errors import BadRequest, ControlError, NotAllowed, NotFound, SimError
from simulator._runner import Simulator, SimulatorThread, run_in_thread
from simulator._sim_settings import SimSettings
from simulator.phone import PhoneClient

__all__ = [
    "AccountCounters",
    "BadRequest",
    "ControlError",
    "DeviceInfo",
    "NotAllowed",
    "NotFound",
    "PhoneClient",
    "SimError",
    "SimSettings",
    "Simulator",
    "SimulatorThread",
    "Snapshot",
    "run_in_thread",
]
