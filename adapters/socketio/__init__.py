"""The Socket.IO driving adapter: namespaces on python-socketio and the broadcaster port."""
