"""Process plumbing shared by every agent: lifecycle, logging, the ops server."""
