"""What the tests share: settings, a live server, recorded bodies and transports, a fake Hugging Face Hub, a tiny
model and a WebSocket client. Imported by name (``from tests.support.context import build_context``), never from
conftest."""
