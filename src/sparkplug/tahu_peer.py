#!/usr/bin/env python3
"""An independent Sparkplug B peer for the tests: Google's protobuf runtime with protoc's output for
the Tahu schema (Debian python3-protobuf, protobuf-compiler).

  tahu_peer.py PB2_DIR decode       reads hex payloads, one per line, prints each as JSON
  tahu_peer.py PB2_DIR rebirth      prints the hex of an NCMD payload asking for a rebirth
"""
import json
import sys
import time

sys.path.insert(0, sys.argv[1])
import sparkplug_b_pb2  # noqa: E402  (generated into PB2_DIR by the test)
from google.protobuf.json_format import MessageToDict  # noqa: E402

Payload = sparkplug_b_pb2.Payload

if sys.argv[2] == "decode":
    for line in sys.stdin:
        p = Payload()
        p.ParseFromString(bytes.fromhex(line.strip()))
        print(json.dumps(MessageToDict(p, preserving_proto_field_name=True)))
elif sys.argv[2] == "rebirth":
    p = Payload()
    p.timestamp = int(time.time() * 1000)
    m = p.metrics.add()
    m.name = "Node Control/Rebirth"
    m.datatype = 11  # Boolean
    m.boolean_value = True
    print(p.SerializeToString().hex())
elif sys.argv[2] == "scenario":
    # An edge node's session as a Tahu edge node would publish it: "TOPIC HEX" per line.
    def out(topic, p):
        print(topic, p.SerializeToString().hex())

    def metric(p, name=None, alias=None, datatype=None, **value):
        m = p.metrics.add()
        if name is not None:
            m.name = name
        if alias is not None:
            m.alias = alias
        if datatype is not None:
            m.datatype = datatype
        m.timestamp = 1700000000000
        for k, v in value.items():
            setattr(m, k, v)

    nb = Payload(seq=0, timestamp=1700000000000)
    metric(nb, "bdSeq", datatype=4, long_value=3)
    metric(nb, "Node Control/Rebirth", datatype=11, boolean_value=False)
    out("spBv1.0/plant/NBIRTH/line1", nb)
    db = Payload(seq=1, timestamp=1700000000000)
    metric(db, "temp", 1, 10, double_value=21.5)
    metric(db, "running", 2, 11, boolean_value=True)
    metric(db, "count", 3, 3, int_value=(-5) & 0xFFFFFFFF)
    metric(db, "total", 4, 4, long_value=(-9007199254740993) & 0xFFFFFFFFFFFFFFFF)
    out("spBv1.0/plant/DBIRTH/line1/pump7", db)
    dd = Payload(seq=2, timestamp=1700000000000)
    metric(dd, alias=1, double_value=22.25)
    metric(dd, alias=3, int_value=(-7) & 0xFFFFFFFF)
    out("spBv1.0/plant/DDATA/line1/pump7", dd)
    gap = Payload(seq=4, timestamp=1700000000000)
    metric(gap, alias=9, double_value=1.5)
    out("spBv1.0/plant/DDATA/line1/pump7", gap)
