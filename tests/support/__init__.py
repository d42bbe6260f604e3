"""What the tests share, imported by name (``from tests.support.context import build_context``), never from conftest:

- ``paths``: ROOT, FIXTURES, REPLAY; ``settings``: make_settings; ``recordings``: recorded bodies, MockTransport routes;
- ``server``: the app on a real uvicorn server (LiveServer, serve); ``wsclient``: a synchronous WebSocket client;
- ``browser``: Debian's headless chromium; ``clock``: FakeClock; ``context``: a stream module's BuildContext;
- ``fake_hf_hub``: a fake Hugging Face Hub on 127.0.0.1 (FakeHfHub); ``tiny_model``: a tiny local classifier.
"""
