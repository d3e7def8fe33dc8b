"""The server's internals: retrieval engine, micro-batcher, hot reload, configuration,
observability, template sanitizing and task routing. ``thoughtbank.server`` maps RPCs onto them."""
