#pragma once

#include <string>
#include <string_view>

namespace weir::control {

// Appends `text` to `out` as a JSON string, quotes included. Control characters and every
// byte outside ASCII are written as \u00XX, so that any bytes (an error text read from shared
// memory) make valid JSON on one line.
void appendJsonString(std::string& out, std::string_view text);
std::string jsonString(std::string_view text);

}  // namespace weir::control
