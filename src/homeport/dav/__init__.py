"""The DAV protocol layer: request XML in, response XML out, nothing else.

Pure functions and frozen dataclasses; no storage, no HTTP framework. The HTTP handlers
in `homeport.server` read headers and bodies with these and hand the results to the
domain services. Every malformed input raises `homeport.errors.InvalidRequest` (400);
a failed DAV precondition raises `homeport.errors.ValidationError` naming its element.

Modules, one per specification:

* `xml`: the hardened parser (`parse_body`: no DTD/entities/network, size and depth
  limits, UTF-8 only), Clark names, the response prefixes and `serialize`.
* `webdav` (RFC 4918): PROPFIND/PROPPATCH bodies, dead properties kept verbatim, the
  Depth/Overwrite/Destination/If headers, href quoting, `Multistatus` and `error_body`.
* `extmkcol` (RFC 5689, RFC 4791 5.3.1): extended MKCOL and MKCALENDAR bodies and
  their response bodies.
* `caldav` (RFC 4791): calendar-query, calendar-multiget, free-busy-query, filters,
  calendar-data (expand etc.), supported-calendar-component-set.
* `carddav` (RFC 6352): addressbook-query (with limit), addressbook-multiget,
  address-data.
* `sync` (RFC 6578): the sync-collection REPORT body.
"""
