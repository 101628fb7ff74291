#!/usr/bin/python3
"""A Modbus slave for Sluice's driver tests and benchmark (Debian python3-pymodbus 3.x).

Serves one register map per unit id, with known values of every type, over TCP or RTU:

  modbus-server.py tcp PORT [--units 1,2]
  modbus-server.py rtu DEVICE [--baud 9600] [--units 1,2]

Prints "ready" on stdout once it serves. Holding registers 100..199 do not exist: reading them
raises Modbus exception 2 (illegal data address). Holding 200..1199 hold `address - 200 + unit`
(for the benchmark's 100-point devices). Values are offset by the unit id where noted so the tests
can tell the units of one bus apart.
"""
import argparse
import asyncio
import logging
import struct
import sys

from pymodbus.datastore import (
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSlaveContext,
    ModbusSparseDataBlock,
)
from pymodbus.framer.rtu_framer import ModbusRtuFramer
from pymodbus.server import StartAsyncSerialServer, StartAsyncTcpServer

logging.basicConfig(level=logging.CRITICAL)


def words(fmt, value):
    raw = struct.pack(">" + fmt, value)
    return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]


def swap_words(ws):
    # CDAB for 32 bits: the two 16-bit words swapped.
    return list(reversed(ws))


def swap_bytes(ws):
    # BADC: each word's bytes swapped.
    return [((w & 0xFF) << 8) | (w >> 8) for w in ws]


def holding(unit):
    regs = [0] * 50
    regs[0] = words("h", -1234)[0]  # int16 -1234
    regs[1] = 54321  # uint16
    regs[2:4] = words("i", -123456789)  # int32 ABCD
    regs[4:6] = swap_words(words("I", 3000000000))  # uint32 CDAB
    regs[6:8] = words("f", 21.5)  # float32 ABCD
    regs[8:12] = words("d", 3.141592653589793)  # float64 ABCD
    regs[12] = 0xA005  # bit field: bits 0, 2, 13, 15
    regs[13:15] = swap_bytes(words("f", -7.25))  # float32 BADC
    regs[15] = 215 + unit  # uint16 with scale 0.1
    regs[16:20] = list(reversed(words("d", -2.5)))  # float64 with the word order reversed (GHEFCDAB)
    values = {i: v for i, v in enumerate(regs)}
    for a in range(200, 1200):
        values[a] = (a - 200 + unit) & 0xFFFF
    return ModbusSparseDataBlock(values)


def slave(unit):
    return ModbusSlaveContext(
        hr=holding(unit),
        ir=ModbusSequentialDataBlock(0, [1000 + unit] + words("f", 12.5) + [0] * 7),
        co=ModbusSequentialDataBlock(0, [True, False, True, True, False, False, False, True] + [False] * 8),
        di=ModbusSequentialDataBlock(0, [False, True, False, False, False, False, True, True] + [False] * 8),
        zero_mode=True,
    )


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["tcp", "rtu"])
    p.add_argument("target")
    p.add_argument("--baud", type=int, default=9600)
    p.add_argument("--units", default="1")
    a = p.parse_args()
    units = [int(u) for u in a.units.split(",")]
    context = ModbusServerContext(slaves={u: slave(u) for u in units}, single=False)
    if a.mode == "tcp":
        server = await StartAsyncTcpServer(
            context, address=("127.0.0.1", int(a.target)), defer_start=True, allow_reuse_address=True
        )
        task = asyncio.create_task(server.serve_forever())
        await server.serving
    else:
        server = await StartAsyncSerialServer(
            context, framer=ModbusRtuFramer, port=a.target, baudrate=a.baud, defer_start=True
        )
        await server.start()
        task = asyncio.create_task(server.serve_forever())
    print("ready", flush=True)
    await task


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
