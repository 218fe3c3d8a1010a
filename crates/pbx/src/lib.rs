//! The PBX core: registrar, authentication, routing, and calls between lines, trunks and rooms.
