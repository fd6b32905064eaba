"""Long fuzz runs of the HTTP proxy parser with atheris (libFuzzer), beyond the suite's short hypothesis runs.

    .venv/bin/pip install -e '.[fuzz]'
    mkdir -p /tmp/http-corpus
    PYTHONPATH=.:firmware .venv/bin/python tests/fuzz/fuzz_http.py -max_total_time=600 /tmp/http-corpus tests/fuzz/seeds_http

New inputs go to the first directory; the seeds (a request, a chunked POST, a CONNECT, two answers; the
first byte picks the target) get it past the head reader at once. libFuzzer's own options apply
(-runs=N, -jobs=N). A failing input is left in crash-*; replay it by passing the file instead of the
directories.
"""

import sys

import atheris

with atheris.instrument_imports():
    import relay.proto.addr  # noqa: F401  (imported here so libFuzzer sees their branches)
    import relay.proto.httpproxy  # noqa: F401
    from tests.fuzz.http_targets import request_target, response_target


def one_input(data):
    fdp = atheris.FuzzedDataProvider(data)
    which = fdp.ConsumeIntInRange(0, 2)
    body = fdp.ConsumeBytes(fdp.remaining_bytes())
    if which == 0:
        request_target(body)
    elif which == 1:
        request_target(body, split=1 + len(body) % 7)
    else:
        response_target(body)


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
