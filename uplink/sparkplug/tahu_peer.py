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
