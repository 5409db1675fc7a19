"""The HTTP driving adapter: aiohttp routes for health, the API, metrics and the demo."""
