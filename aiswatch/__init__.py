"""aiswatch: watch ships through AIS.

The product package: configuration, the command line and the wiring of
``ingest``, ``storage`` (and, later, ``detectors`` and ``alerts``) into
services. Nothing else imports it.
"""

__version__ = "0.1.0"
