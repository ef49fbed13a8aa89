// apps/config_json.h: the config rules every workflow shares, checked against hand-written expectations.
#include "tests/support/testing.h"

#include <fstream>

#include "apps/config_json.h"

using cxr::testing::TempDir;
using nlohmann::json;
namespace apps = cxr::apps;

TEST_CASE("config_json: reading, unknown keys, wrong types, differences, paths", "[cpu][apps][config]") {
    TempDir dir("config_json");
    std::ofstream(dir / "good.json") << R"({"a": 1, "b": "x"})";
    std::ofstream(dir / "bad.json") << "{not json";
    CHECK(apps::read_json_file(dir / "good.json", "w", "config") == json{{"a", 1}, {"b", "x"}});
    CHECK_THROWS_WITH(apps::read_json_file(dir / "none.json", "w", "config"),
                      Catch::Contains("w: cannot open config '") && Catch::Contains("none.json"));
    CHECK_THROWS_WITH(apps::read_json_file(dir / "bad.json", "w", "config"),
                      Catch::Contains("bad.json' is not valid JSON"));

    const json j = {{"lr", 0.5}, {"name", "x"}};
    CHECK_NOTHROW(apps::check_known_keys(j, "cfg", {"lr", "name", "seed"}));
    CHECK_THROWS_WITH(apps::check_known_keys(j, "cfg", {"lr"}),
                      Catch::Contains("cfg: unknown key \"name\" (known: lr)"));
    CHECK_THROWS_WITH(apps::check_known_keys(json::array(), "cfg", {"lr"}), Catch::Contains("expected a JSON object"));

    double lr = 1.0;
    int seed = 7;
    apps::read_key(j, "lr", lr, "cfg");
    apps::read_key(j, "seed", seed, "cfg");  // absent: the default stays
    CHECK(lr == 0.5);
    CHECK(seed == 7);
    CHECK_THROWS_WITH(apps::read_key(j, "name", seed, "cfg"), Catch::Contains("cfg: \"name\" has the wrong type"));

    CHECK(apps::config_differences({{"lr", 1}, {"old", true}}, {{"lr", 2}, {"seed", 3}}) ==
          "lr (1 -> 2), seed (absent -> 3), old (removed)");
    CHECK(apps::config_differences(j, j).empty());

    CHECK(apps::resolve_config_path("img/x.png", "/data/cfg") == "/data/cfg/img/x.png");
    CHECK(apps::resolve_config_path("/abs/x.png", "/data/cfg") == "/abs/x.png");
    CHECK(apps::resolve_config_path("x.png", "") == "x.png");
    CHECK(apps::one_of("b", {"a", "b"}));
    CHECK_FALSE(apps::one_of("c", {"a", "b"}));
}
