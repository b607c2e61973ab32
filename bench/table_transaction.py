"""CPU of one entity-group transaction (a subscription row and its audit row), as the mirror writes it.

Three ways against Azurite on 127.0.0.1, in the same run: `submit_transaction` of azure-data-tables as it
ships (framing through Python's `email` package), the same call on `shared.storage.transactions.TableClient`
(the client the app uses), and, as the floor, one single-row upsert (the least a write costs through the
SDK). CPU is this process's own time (`time.process_time`), so Azurite's share is not in it.

Run: .venv/bin/python -m bench.table_transaction [--count 600]
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable

from azure.data.tables import TableClient as SdkTableClient
from azure.data.tables import TableServiceClient, UpdateMode

from bench.machine import machine_line
from shared.storage.transactions import TableClient
from shared.tls import azure_transport_settings
from tests.support.azurite import running_azurite

WARM_UP = 50


def _row(kind: str, index: int) -> dict[str, object]:
    # About the size of a mirror row and an audit row: a few short fields and a JSON blob.
    return {
        "PartitionKey": "bench",
        "RowKey": f"{kind}-{index:08d}",
        "status": "Subscribed",
        "quantity": 5,
        "name": "x" * 200,
        "changes": "y" * 300,
    }


def cpu_ms(count: int, step: Callable[[int], object]) -> float:
    for index in range(WARM_UP):
        step(-index - 1)
    started = time.process_time()
    for index in range(count):
        step(index)
    return (time.process_time() - started) / count * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=600)
    args = parser.parse_args()

    with running_azurite() as connection_string:
        table = "t" + uuid.uuid4().hex[:12]
        TableServiceClient.from_connection_string(connection_string).create_table(table)
        sdk = SdkTableClient.from_connection_string(connection_string, table, **azure_transport_settings())
        ours = TableClient.from_connection_string(connection_string, table, **azure_transport_settings())

        def transaction(client: SdkTableClient, run: str) -> Callable[[int], object]:
            return lambda i: client.submit_transaction(
                [
                    ("upsert", _row(f"{run}-row", i), {"mode": UpdateMode.REPLACE}),
                    ("create", _row(f"{run}-audit", i)),
                ]
            )

        figures = {
            "SDK submit_transaction": cpu_ms(args.count, transaction(sdk, "sdk")),
            "app TableClient.submit_transaction": cpu_ms(args.count, transaction(ours, "app")),
            "floor: one single-row upsert": cpu_ms(
                args.count, lambda i: sdk.upsert_entity(_row("single", i), mode=UpdateMode.REPLACE)
            ),
        }
    floor = figures["floor: one single-row upsert"]
    print(f"Table transaction of 2 rows (a row and its audit row), {args.count} each, CPU of this process:")
    for name, milliseconds in figures.items():
        print(f"  {name:36s} {milliseconds:6.2f} ms   ratio to the floor {milliseconds / floor:4.2f}")
    print(f"  {machine_line()}")
    print(f"  reproduce: .venv/bin/python -m bench.table_transaction --count {args.count}")


if __name__ == "__main__":
    main()
