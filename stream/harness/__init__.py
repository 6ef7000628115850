"""Operators' harness around a running deployment: replaying logged clicks, collecting the answers
(`collector`) and judging them prequentially, the report, and `streamrec demo` (broker + worker +
replay in one command)."""
