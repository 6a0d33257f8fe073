"""Docker HEALTHCHECK: healthy when GET /readyz answers 200 (ready, or degraded but routing).

Standard library only and no `routeiq` import, so a probe every 30 s costs ~20 ms, not a full
interpreter start with numpy and onnxruntime; the image needs no curl.
"""

from __future__ import annotations

import os
import sys
import urllib.request

# Wildcard listen addresses: the probe then connects over loopback (it never binds anything).
_ANY_ADDRESS = {"", "0.0.0.0", "::", "[::]"}  # noqa: S104


def main() -> int:
    host = os.environ.get("ROUTEIQ_HOST", "127.0.0.1")
    host = "127.0.0.1" if host in _ANY_ADDRESS else host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    url = f"http://{host}:{os.environ.get('ROUTEIQ_PORT', '8400')}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except OSError as exc:  # URLError and HTTPError (503 while loading) are OSErrors
        print(f"healthcheck: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
