#include "core/escape.h"

#include <algorithm>

namespace im::esc {

std::string md_text(const std::string & s) {
    static const std::string special = "\\`*_{}[]<>#|!~&$";
    std::string out;
    out.reserve(s.size() + 8);
    for (char c : s) {
        if (c == '\n' || c == '\r') {
            out += ' ';
        } else if (special.find(c) != std::string::npos) {
            out += '\\';
            out += c;
        } else {
            out += c;
        }
    }
    return out;
}

std::string md_code(const std::string & s) {
    std::string body;
    body.reserve(s.size());
    size_t run = 0, longest = 0;
    for (char c : s) {
        body += (c == '\n' || c == '\r') ? ' ' : c;
        run = c == '`' ? run + 1 : 0;
        longest = std::max(longest, run);
    }
    const std::string fence(longest + 1, '`');
    // A space on each side keeps a leading or trailing backtick out of the fence (CommonMark strips one).
    const bool pad = !body.empty() && (body.front() == '`' || body.back() == '`' || body.front() == ' ');
    return fence + (pad ? " " : "") + body + (pad ? " " : "") + fence;
}

std::string html(const std::string & s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
            case '&':  out += "&amp;"; break;
            case '<':  out += "&lt;"; break;
            case '>':  out += "&gt;"; break;
            case '"':  out += "&quot;"; break;
            case '\'': out += "&#39;"; break;
            default:
                if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') break;  // not allowed in XML
                out += c;
        }
    }
    return out;
}

std::string shell_quote(const std::string & s) {
    const bool plain = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               std::string_view("_@%+=:,./-").find(c) != std::string_view::npos;
    });
    if (plain) return s;
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

std::string shell_join(const std::vector<std::string> & words) {
    std::string out;
    for (const auto & w : words) out += (out.empty() ? "" : " ") + shell_quote(w);
    return out;
}

std::string csv_formula_safe(const std::string & s) {
    if (!s.empty() && std::string_view("=+-@\t\r").find(s.front()) != std::string_view::npos) return "'" + s;
    return s;
}

}  // namespace im::esc
