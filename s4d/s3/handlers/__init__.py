"""S3 operation handlers: parse the request, call the engine, return a Response."""
