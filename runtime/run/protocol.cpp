#include "runtime/run/protocol.h"

#include "runtime/core/error.h"

namespace ditrun::runtime::protocol {
namespace {
constexpr std::pair<Kind, std::string_view> kNames[] = {
    {Kind::request, "request"}, {Kind::job, "job"},           {Kind::stop, "stop"},     {Kind::done, "done"},
    {Kind::state, "state"},     {Kind::latent, "latent"},     {Kind::progress, "progress"},
    {Kind::result, "result"},   {Kind::plan, "plan"},         {Kind::abort, "abort"},
    {Kind::share, "share"},     {Kind::handover, "handover"}};
}  // namespace

std::string_view name(Kind kind) {
  for (const auto& [k, n] : kNames)
    if (k == kind) return n;
  return "?";
}

transport::TensorMessage message(Kind kind) {
  transport::TensorMessage m;
  m.header = {{key::kind, name(kind)}};
  return m;
}

Kind kind_of(const transport::TensorMessage& m, int source) {
  const auto it = m.header.find(key::kind);
  if (it == m.header.end() || !it->is_string()) fail("a message from rank {} has no kind", source);
  const std::string text = it->get<std::string>();
  for (const auto& [k, n] : kNames)
    if (n == text) return k;
  fail("a message from rank {} has the unknown kind '{}'", source, text);
}

void send(transport::Channel& channel, int peer, const transport::TensorMessage& m) {
  channel.send(peer, kTag, transport::encode_tensor_message(m));
}

}  // namespace ditrun::runtime::protocol
