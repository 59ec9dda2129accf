#include "master/view.h"

#include <gtest/gtest.h>

#include <string>

namespace weir::master {
namespace {

std::string quoted(std::string_view text) {
  std::string out;
  appendJsonString(out, text);
  return out;
}

TEST(JsonString, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(quoted("plain"), "\"plain\"");
  EXPECT_EQ(quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(quoted("l1\nl2\r\t"), "\"l1\\nl2\\r\\t\"");
  EXPECT_EQ(quoted(std::string_view("\0\x01\x1f\x7f", 4)), "\"\\u0000\\u0001\\u001f\\u007f\"");
  // "</script>" stays as is: the page never puts JSON into HTML unescaped.
  EXPECT_EQ(quoted("/"), "\"/\"");
}

TEST(JsonString, KeepsValidUtf8AndReplacesInvalidBytes) {
  EXPECT_EQ(quoted("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  EXPECT_EQ(quoted("\xff"), "\"\\ufffd\"");
  EXPECT_EQ(quoted("\xc3"), "\"\\ufffd\"");             // truncated sequence
  EXPECT_EQ(quoted("\xc0\xaf"), "\"\\ufffd\\ufffd\"");  // overlong '/'
  EXPECT_EQ(quoted("\xed\xa0\x80"),
            "\"\\ufffd\\ufffd\\ufffd\"");  // a UTF-16 surrogate
  EXPECT_EQ(quoted("\xf4\x90\x80\x80"),
            "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");  // > U+10FFFF
}

TEST(ToJson, WritesEveryPart) {
  View view;
  view.master_pid = 42;
  view.steering = "least-loaded";
  view.steering_bpf = true;
  view.reloads = 3;
  GenerationView gen{7, false, {}};
  WorkerView w;
  w.slot = 1;
  w.pid = 100;
  w.active = 2;
  w.accepted = 9;
  gen.workers.push_back(w);
  view.generations.push_back(gen);
  view.listeners.push_back({"web", {"127.0.0.1:80", "[::1]:80"}, "app", "tcp"});
  BackendView b;
  b.address = "10.0.0.1:8080";
  b.state = "down";
  b.admin = "drain";
  b.weight = 3;
  b.effective_weight = 0.75;
  b.slow_start_remaining_ms = 2250;
  b.last_check_age_ms = 1500;
  b.last_error = "connect: \"refused\"\n";
  view.pools.push_back({"app", {b}});

  const std::string json = toJson(view);
  EXPECT_EQ(json.front(), '{');
  EXPECT_EQ(json.back(), '\n');
  EXPECT_NE(json.find("\"master_pid\":42,\"steering\":\"least-loaded\","
                      "\"steering_bpf\":true,"
                      "\"reloads\":3"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"generations\":[{\"number\":7,\"state\":\"serving\",\"workers\":[{"
                      "\"slot\":1,\"pid\":100,\"active\":2,\"accepted\":9,"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"binds\":[\"127.0.0.1:80\",\"[::1]:80\"]"), std::string::npos) << json;
  EXPECT_NE(json.find("\"state\":\"down\",\"admin\":\"drain\",\"weight\":3,"
                      "\"effective_weight\":0.75,\"slow_start_remaining_ms\":2250,"
                      "\"last_check_age_ms\":1500,\"last_check_duration_us\":-1,"
                      "\"last_error\":\"connect: \\\"refused\\\"\\n\""),
            std::string::npos)
      << json;
}

TEST(ToJson, EmptyViewIsValid) {
  EXPECT_EQ(toJson(View{}),
            "{\"master_pid\":0,\"steering\":\"\",\"steering_bpf\":false,\"reloads\":0,"
            "\"reloads_failed\":0,\"reload_cut_connections\":{\"drain_timeout\":0,"
            "\"generation_limit\":0,\"retired_queue\":0},\"generations\":[],\"listeners\":[],"
            "\"pools\":[]}\n");
}

}  // namespace
}  // namespace weir::master
