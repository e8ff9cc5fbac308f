"""Request authentication: AWS Signature V4 and V2, and aws-chunked bodies."""
