#pragma once
/// Redaction of PostgreSQL connection URLs (store.url) before they reach a
/// message or a log: the URL names the server and the database, which helps
/// an operator; its password never leaves this process.

#include <string>
#include <string_view>
#include <vector>

namespace mailhook::pgstore {

/// `url` with the password replaced by `<redacted>`: the user-info password
/// of a URI ("postgresql://u:pw@h/db" → "postgresql://u:<redacted>@h/db"),
/// a `password=` query parameter, or the `password=` of a key/value
/// connection string. Everything else is kept as written.
std::string RedactUrl(std::string_view url);

/// The passwords `url` carries, as written and percent-decoded (a URL's
/// password may be percent-encoded; libpq's messages would show it decoded).
/// Empty when there is none.
std::vector<std::string> PasswordsIn(std::string_view url);

/// `text` with every occurrence of a password of `url` replaced by
/// `<redacted>`: a last guard on text that came back from libpq or the server.
std::string RedactPasswordsOf(std::string_view url, std::string text);

}  // namespace mailhook::pgstore
