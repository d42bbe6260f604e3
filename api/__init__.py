"""REST routes over the data the services keep (history, sentiment scoring), beside the WebSocket API."""
