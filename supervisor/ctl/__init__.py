"""``wasup ctl``: an operator's command line over a running daemon's HTTP API.

It speaks only the public API (docs/http.md), with the standard library's ``urllib``, so it
works from any shell on the host, over SSH, without a browser. Exit codes say what went
wrong, for scripts:

====  ================================================================================
0     done
1     the daemon refused or failed (its message is shown), or ``qr`` found no QR showing
2     bad command line
3     no daemon answers at the URL
4     API key missing, not accepted, or none configured on the daemon
5     unknown instance id
====  ================================================================================

The API key is read from ``--key-file`` or ``$WASUP_API_KEY`` and is never printed.
"""

from supervisor.ctl._cli import add_arguments, run
from supervisor.ctl._client import Client, CtlError, Key, api_key, base_url
from supervisor.ctl._format import age, status_table

__all__ = [
    "Client",
    "CtlError",
    "Key",
    "add_arguments",
    "age",
    "api_key",
    "base_url",
    "run",
    "status_table",
]
