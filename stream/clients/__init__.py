"""What web apps and the harness use to talk to a deployment: the click producer and the
recommendation feed (the replay's collector of answers is in stream/harness/)."""
