"""A tiny local stand-in for https://pokeapi.co serving recorded responses (machines here are offline).

Serves ``/api/v2/pokemon/<name>`` from ``localdev/pokeapi/<name>.json``: the fields the example DAG
reads, with their real values as recorded from the public API. Anything else is a 404.
"""

from __future__ import annotations

import argparse
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

RECORDED = Path(__file__).parent / "pokeapi"
ROUTE = re.compile(r"^/api/v2/pokemon/([a-z0-9-]+)/?$")


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        match = ROUTE.match(self.path.split("?", 1)[0])
        path = RECORDED / f"{match.group(1)}.json" if match else None
        if path is None or not path.is_file():
            self.send_error(404, "Not Found")
            return
        body = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8089)
    args = parser.parse_args()
    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
