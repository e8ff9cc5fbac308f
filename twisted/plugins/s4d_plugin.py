"""twistd plugin: ``twistd -n s4`` runs the s4d object store."""

from twisted.application.service import ServiceMaker

s4 = ServiceMaker("s4d", "s4d.tap", "An S3-compatible object store.", "s4")
