"""Verifies webhook requests with the Standard Webhooks reference library (PyPI
`standardwebhooks`), independently of seatlock's own signing code.

Reads one JSON object per line on stdin: {"secret", "headers": {name: value}, "body"}; verifies
each as a receiver would (signature, and a timestamp within the library's tolerance), and prints
how many verified. Exits 1 at the first that does not, naming it. Used by tests/api/webhooks.rs.
"""

import json
import sys

from standardwebhooks import Webhook


def main() -> int:
    verified = 0
    for n, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        request = json.loads(line)
        try:
            Webhook(request["secret"]).verify(request["body"].encode(), request["headers"])
        except Exception as e:  # noqa: BLE001 - any failure is the test's failure
            print(f"request {n} does not verify: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
        verified += 1
    print(verified)
    return 0


if __name__ == "__main__":
    sys.exit(main())
