#!/usr/bin/env python3
"""Check that a floor answers the audit's question: the same findings, with the same
evidence, and the same unparseable-row count as the CLI.

bench-audit-same.py NAME CLI.json FLOOR.tsv [--lists-as-sets]

FLOOR.tsv: rule, org_id, user_id, email, evidence per line; the `unparseable` row
carries the count. --lists-as-sets: comma-joined lists in the evidence compare as sets
(SQLite's group_concat has no order). Rules SQL cannot answer the API's way (email
identity, the API's own normalization), and no-telemetry (a finding only when the
audit is inconclusive), are left out."""
import json
import sys

SKIP = ("case-variant-email", "unreachable-email", "no-telemetry", "forged-provenance")
LISTS = ("created_by", "owner_ids", "owner_emails", "reasons")
name, cli_path, floor_path = sys.argv[1:4]
as_sets = "--lists-as-sets" in sys.argv[4:]


def key(rule, org, user, email, ev):
    if as_sets and isinstance(ev, dict):
        ev = {k: (",".join(sorted(v.split(","))) if k in LISTS and isinstance(v, str) else v)
              for k, v in ev.items()}
    return (rule, org or "", user or "", email or "", json.dumps(ev, sort_keys=True))


cli = json.load(open(cli_path))
ours = {key(f["rule"], f["org_id"], f["user_id"], f["email"], f["evidence"])
        for f in cli["findings"] if f["rule"] not in SKIP}
floor, unparseable = set(), None
for line in open(floor_path):
    rule, org, user, email, ev = line.rstrip("\n").split("\t")
    if rule == "unparseable":
        unparseable = int(ev)
    elif rule not in SKIP:
        floor.add(key(rule, org, user, email, json.loads(ev)))
if ours != floor or unparseable != cli["summary"]["unparseable_rows"]:
    print(f"{name}: the floor and the CLI disagree", file=sys.stderr)
    for k in sorted(ours - floor)[:5]:
        print("  only the CLI:  ", k, file=sys.stderr)
    for k in sorted(floor - ours)[:5]:
        print("  only the floor:", k, file=sys.stderr)
    print(f"  unparseable: CLI {cli['summary']['unparseable_rows']}, floor {unparseable}", file=sys.stderr)
    sys.exit(1)
print(f"{name}: = CLI: {len(ours)} findings with their evidence, {unparseable} unparseable rows")
