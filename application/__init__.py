"""The application ring: wire contract, handlers, middleware pipeline, settings, wiring."""
