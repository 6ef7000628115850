"""What web apps and the harness use to talk to a deployment: the click producer, the
recommendation feed, and the replay's collector of answers."""
