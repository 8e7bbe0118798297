// fuzz_decoders: every decoder on arbitrary bytes. The first byte selects the
// decoder; for the charset and parameter ones the text up to the first '\n'
// is the charset or parameter name. Outputs our headers promise to be UTF-8
// are checked.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "check.h"
#include "mime/decode.h"
#include "mime/header.h"
#include "mime/params.h"
#include "util/base64.h"

using namespace mailhook;
using fuzz::CheckUtf8;

namespace {

// Splits "head\nrest" (head at most 64 bytes, as labels are short).
std::pair<std::string_view, std::string_view> SplitHead(std::string_view in) {
  size_t nl = in.find('\n');
  if (nl == std::string_view::npos || nl > 64) return {std::string_view(), in};
  return {in.substr(0, nl), in.substr(nl + 1)};
}

void CheckAddresses(const std::vector<mime::Address>& list) {
  for (const mime::Address& a : list) {
    CheckUtf8(a.name, "ParseAddressList name");
    CheckUtf8(a.address, "ParseAddressList address");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t selector = data[0];
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto [head, rest] = SplitHead(in);

  switch (selector % 12) {
    case 0: {
      std::string out = mime::DecodeBase64(in);
      // Round trip: what we encode, we decode back unchanged.
      fuzz::Check(mime::DecodeBase64(util::Base64Encode(out)) == out, "base64 round trip");
      break;
    }
    case 1:
      (void)mime::DecodeQuotedPrintable(in, /*header=*/false);
      (void)mime::DecodeQuotedPrintable(in, /*header=*/true);
      break;
    case 2: (void)mime::DecodeUuencode(in); break;
    case 3: {
      // Piecewise decoding (the daemon's partial FETCHes) must give exactly
      // what decoding the whole gives, wherever the pieces are cut.
      std::string whole = mime::DecodeTransfer(rest, head);
      size_t piece = 1 + (selector / 12) % 7;
      mime::TransferDecoder decoder(head);
      std::string pieces;
      for (size_t i = 0; i < rest.size(); i += piece) decoder.Feed(rest.substr(i, piece), pieces);
      decoder.Finish(pieces);
      fuzz::Check(pieces == whole, "TransferDecoder in pieces == DecodeTransfer");
      util::Base64Encoder encoder;
      std::string b64;
      for (size_t i = 0; i < whole.size(); i += piece) encoder.Add(std::string_view(whole).substr(i, piece), b64);
      encoder.Finish(b64);
      fuzz::Check(b64 == util::Base64Encode(whole), "Base64Encoder in pieces == EncodeBase64");
      break;
    }
    case 4: {
      CheckUtf8(mime::ToUtf8(rest, head), "ToUtf8");
      (void)mime::NormalizeCharset(head);
      break;
    }
    case 5:
      CheckUtf8(mime::ForceUtf8(in), "ForceUtf8");
      CheckUtf8(mime::Windows1252ToUtf8(in), "Windows1252ToUtf8");
      break;
    case 6: CheckUtf8(mime::DecodeHeaderText(in), "DecodeHeaderText"); break;
    case 7: CheckAddresses(mime::ParseAddressList(in)); break;
    case 8: {
      for (const std::string& id : mime::ParseMessageIds(in)) CheckUtf8(id, "ParseMessageIds");
      if (auto id = mime::ParseMessageId(in)) CheckUtf8(*id, "ParseMessageId");
      break;
    }
    case 9: {
      if (auto date = mime::ParseDate(in)) CheckUtf8(*date, "ParseDate");
      break;
    }
    case 10: {
      // RFC 2231 / 2047 parameters: `head` is the parameter name asked for,
      // `rest` the parameter text (Content-Type and Content-Disposition forms).
      std::string name(head.empty() ? std::string_view("filename") : head);
      std::vector<mime::Param> params = mime::ParseParams(rest);
      if (auto v = mime::DecodeParam(params, name)) CheckUtf8(*v, "DecodeParam");
      if (auto v = mime::DecodeParam(params, name, "iso-2022-jp")) CheckUtf8(*v, "DecodeParam fallback");
      for (const mime::Param& p : params) {
        if (auto v = mime::DecodeParam(params, p.name)) CheckUtf8(*v, "DecodeParam by name");
      }
      mime::ContentType ct = mime::ParseContentType(rest);
      if (auto v = mime::DecodeParam(ct.params, "name")) CheckUtf8(*v, "DecodeParam name");
      mime::Disposition disp = mime::ParseDisposition(rest);
      if (auto v = mime::DecodeParam(disp.params, "filename")) CheckUtf8(*v, "DecodeParam filename");
      break;
    }
    case 11: {
      std::vector<mime::HeaderField> fields = mime::ParseHeaderBlock(in);
      for (const char* name : {"From", "To", "Subject", "Date", "Message-ID", "References"}) {
        (void)mime::FirstHeader(fields, name);
        (void)mime::AllHeaders(fields, name);
      }
      break;
    }
  }
  return 0;
}
