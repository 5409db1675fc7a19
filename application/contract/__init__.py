"""Wire contract v1: inbound payload classes with their validation, outbound shapes."""
