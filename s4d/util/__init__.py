"""Small Twisted helpers shared by the service layers."""
