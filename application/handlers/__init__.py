"""Command handlers per namespace: validated payload in, ack data out, domain in between."""
