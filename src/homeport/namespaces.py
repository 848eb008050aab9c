"""XML namespaces shared by every layer (a name, not a behaviour, so any layer may import it)."""

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
CARDDAV = "urn:ietf:params:xml:ns:carddav"
CALENDARSERVER = "http://calendarserver.org/ns/"
APPLE_ICAL = "http://apple.com/ns/ical/"
HOMEPORT = "https://homeport.invalid/ns/"
