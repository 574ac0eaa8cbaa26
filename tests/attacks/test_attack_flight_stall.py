"""A Flight client that stops reading must not keep the service from stopping (review of #15).

pyarrow's ``FlightServerBase.shutdown()`` waits for every call, also a result stream to a client
that stopped reading (a laptop gone to sleep, or on purpose): ``systemctl stop`` then hung until
SIGKILL, skipping the audit log's close. ``run._stop_flight`` waits at most the grace period.
"""

from __future__ import annotations

import threading
import time

import pyarrow as pa
import pyarrow.flight as flight

from alpr_workbench.service.run import SHUTDOWN_GRACE_S, _stop_flight


class _Endless(flight.FlightServerBase):
    """Streams 1 MiB batches for as long as the client takes them."""

    def do_get(self, context, ticket):
        batch = pa.record_batch({"x": pa.array([b"\0" * 1024] * 1024, pa.binary())})

        def batches():
            while True:
                yield batch

        return flight.GeneratorStream(batch.schema, batches())


def test_a_stalled_reader_does_not_hold_the_stop():
    server = _Endless("grpc://127.0.0.1:0")
    threading.Thread(target=server.serve, daemon=True).start()
    client = flight.FlightClient(f"grpc://127.0.0.1:{server.port}")
    reader = client.do_get(flight.Ticket(b"all"))
    reader.read_chunk()  # then it stops reading: the server's writes block
    time.sleep(0.5)
    started = time.monotonic()
    _stop_flight(server)
    assert time.monotonic() - started < SHUTDOWN_GRACE_S + 2
    client.close()
