#include "imap/bodystructure.h"

#include "util/strings.h"

#include <algorithm>
#include <cctype>
#include <string>

namespace mailhook::imap {
namespace {

// libetpan leaves absent strings NULL.
std::string_view OrEmpty(const char* s) { return s ? s : ""; }

// Servers differ in case (Cyrus uppercases, Courier lowercases, Dovecot keeps
// the message's): compare everything lowercased (DESIGN.md "Other servers").
std::vector<mime::Param> Params(const mailimap_body_fld_param* params) {
  std::vector<mime::Param> out;
  if (!params || !params->pa_list) return out;
  for (clistiter* it = clist_begin(params->pa_list); it; it = clist_next(it)) {
    auto* p = static_cast<mailimap_single_body_fld_param*>(clist_content(it));
    if (!p || !p->pa_name) continue;
    out.push_back({util::Lower(OrEmpty(p->pa_name)), p->pa_value ? p->pa_value : ""});
  }
  return out;
}

std::string Encoding(const mailimap_body_fld_enc* enc) {
  if (!enc) return "7bit";
  switch (enc->enc_type) {
    case MAILIMAP_BODY_FLD_ENC_7BIT: return "7bit";
    case MAILIMAP_BODY_FLD_ENC_8BIT: return "8bit";
    case MAILIMAP_BODY_FLD_ENC_BINARY: return "binary";
    case MAILIMAP_BODY_FLD_ENC_BASE64: return "base64";
    case MAILIMAP_BODY_FLD_ENC_QUOTED_PRINTABLE: return "quoted-printable";
    default: return util::Lower(OrEmpty(enc->enc_value));
  }
}

void ApplyFields(const mailimap_body_fields* f, mime::Part& part) {
  if (!f) return;
  part.params = Params(f->bd_parameter);
  if (f->bd_id) part.id = f->bd_id;
  if (f->bd_description) part.description = f->bd_description;
  part.encoding = Encoding(f->bd_encoding);
  part.size = f->bd_size;
}

void ApplyDisposition(const mailimap_body_fld_dsp* dsp, mime::Part& part) {
  if (!dsp || !dsp->dsp_type) return;
  part.disposition = util::Lower(OrEmpty(dsp->dsp_type));
  part.disposition_params = Params(dsp->dsp_attributes);
}

std::string MediaType(const mailimap_media_basic* m) {
  if (!m) return "application";
  switch (m->med_type) {
    case MAILIMAP_MEDIA_BASIC_APPLICATION: return "application";
    case MAILIMAP_MEDIA_BASIC_AUDIO: return "audio";
    case MAILIMAP_MEDIA_BASIC_IMAGE: return "image";
    case MAILIMAP_MEDIA_BASIC_MESSAGE: return "message";
    case MAILIMAP_MEDIA_BASIC_VIDEO: return "video";
    default: return util::Lower(OrEmpty(m->med_basic_type));
  }
}

std::string ChildSection(const std::string& parent, size_t index) {
  std::string n = std::to_string(index + 1);
  return parent.empty() ? n : parent + "." + n;
}

// The walk's bounds: what is left of the part budget, and whether anything
// was left out.
struct Walk {
  size_t parts_left = kMaxBodyStructureParts;
  bool cut = false;
};

mime::Part Convert(const mailimap_body* body, const std::string& section, int depth, Walk& walk) {
  mime::Part part;
  --walk.parts_left;
  part.section = section;
  if (body && body->bd_type == MAILIMAP_BODY_MPART && body->bd_data.bd_body_mpart) {
    const auto* mp = body->bd_data.bd_body_mpart;
    part.type = "multipart";
    part.subtype = util::Lower(OrEmpty(mp->bd_media_subtype));
    part.encoding = "7bit";
    if (mp->bd_ext_mpart) {
      part.params = Params(mp->bd_ext_mpart->bd_parameter);
      ApplyDisposition(mp->bd_ext_mpart->bd_disposition, part);
    }
    size_t i = 0;
    // Deeper parts are not listed: the walk stays bounded whatever a server
    // sends, and no real mail nests this deep.
    for (clistiter* it = mp->bd_list ? clist_begin(mp->bd_list) : nullptr; it; it = clist_next(it), ++i) {
      if (depth >= kMaxBodyStructureDepth || walk.parts_left == 0) {
        walk.cut = true;
        break;
      }
      part.children.push_back(
          Convert(static_cast<const mailimap_body*>(clist_content(it)), ChildSection(section, i), depth + 1, walk));
    }
    return part;
  }
  // A single part. The body of a single-part message is section "1".
  if (part.section.empty()) part.section = "1";
  const mailimap_body_type_1part* one =
      body && body->bd_type == MAILIMAP_BODY_1PART ? body->bd_data.bd_body_1part : nullptr;
  if (!one) {
    part.type = "application";
    part.subtype = "octet-stream";
    return part;
  }
  switch (one->bd_type) {
    case MAILIMAP_BODY_TYPE_1PART_TEXT:
      part.type = "text";
      part.subtype = util::Lower(OrEmpty(one->bd_data.bd_type_text->bd_media_text));
      ApplyFields(one->bd_data.bd_type_text->bd_fields, part);
      break;
    case MAILIMAP_BODY_TYPE_1PART_MSG:
      // message/rfc822 stays a leaf: forwarded mail is an attachment.
      part.type = "message";
      part.subtype = "rfc822";
      ApplyFields(one->bd_data.bd_type_msg->bd_fields, part);
      break;
    case MAILIMAP_BODY_TYPE_1PART_BASIC:
      part.type = MediaType(one->bd_data.bd_type_basic->bd_media_basic);
      part.subtype = one->bd_data.bd_type_basic->bd_media_basic
                         ? util::Lower(OrEmpty(one->bd_data.bd_type_basic->bd_media_basic->med_subtype))
                         : "octet-stream";
      ApplyFields(one->bd_data.bd_type_basic->bd_fields, part);
      break;
    default:
      part.type = "application";
      part.subtype = "octet-stream";
      break;
  }
  if (one->bd_ext_1part) ApplyDisposition(one->bd_ext_1part->bd_disposition, part);
  // Dovecot answers ("" "") for a Content-Type it cannot parse (e.g.
  // "multipart/mixed boundary=x", the ';' forgotten). The type stays empty:
  // the Extractor takes that as a doubtful structure and parses the
  // message's own bytes (else it treats the part as text/plain, RFC 2045 §5.2).
  return part;
}

}  // namespace

mime::Part PartTreeFromBodyStructure(const mailimap_body* body, bool* cut) {
  Walk walk;
  mime::Part root = Convert(body, "", 0, walk);
  if (cut) *cut = walk.cut;
  return root;
}

}  // namespace mailhook::imap
