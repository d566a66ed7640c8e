"""The gateway's packaged access policy (``access.cedar``) and its Cedar schema (``access.cedarschema``)."""
