"""The S3 protocol layer."""
