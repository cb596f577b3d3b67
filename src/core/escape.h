#pragma once

#include <string>
#include <vector>

// Escaping for every format infermeter writes text into (DESIGN §5: dataset-derived strings, model
// paths and names never become markup, formulas or commands). Pure functions.
namespace im::esc {

// Text shown literally inside a Markdown sentence or table cell (CommonMark/GFM): the characters
// that start emphasis, code, links, images, inline HTML, entities, table cells or math
// (\ ` * _ { } [ ] < > # | ! ~ & $) are backslash-escaped, and line breaks become spaces (a newline
// would end a table row or start a heading).
std::string md_text(const std::string & s);
// An inline code span holding `s` literally (a fence longer than any backtick run inside).
std::string md_code(const std::string & s);
// HTML/XML text and attribute values: & < > " ' as entities; other control characters dropped.
std::string html(const std::string & s);
// One POSIX shell word: unchanged when it is plain ([A-Za-z0-9_@%+=:,./-]), otherwise in single
// quotes with embedded quotes as '\''. Pasting the result runs no command.
std::string shell_quote(const std::string & s);
// The words shell-quoted and joined with spaces: a command line to paste.
std::string shell_join(const std::vector<std::string> & words);
// A CSV text cell neutralised against formula injection (OWASP "CSV Injection"): a cell starting
// with = + - @, tab or carriage return gets a leading single quote. Numbers are not passed here.
std::string csv_formula_safe(const std::string & s);

}  // namespace im::esc
