"""Operators' harness around a running deployment: replaying logged clicks, judging the answers
prequentially, the report, and `streamrec demo` (broker + worker + replay in one command)."""
