// Labels of the page in Vietnamese (default) and English. t("key") answers the current language.
const LABELS = {
  vi: {
    title: "Cảnh Giác — tài khoản rủi ro cao", login: "Đăng nhập", key: "Khóa API",
    keyHelp: "Khóa do quản trị viên cấp bằng: canhgiac keys create --role investigator --name TÊN",
    signIn: "Đăng nhập", signOut: "Đăng xuất", accounts: "Tài khoản", queues: "Hàng đợi",
    model: "Mô hình", reports: "Báo cáo", search: "Tìm tài khoản…", go: "Mở",
    minScore: "Điểm tối thiểu", type: "Loại", any: "tất cả", personal: "cá nhân",
    business: "doanh nghiệp", unknown: "không rõ", foreignOnly: "chỉ đăng nhập từ nước ngoài",
    caseStatus: "Vụ việc", typology: "Loại hình", load: "Lọc", more: "Xem thêm",
    view9a: "Mục 9a: DN đăng nhập từ nước ngoài", atReview: "Từ ngưỡng xem xét",
    shown: "đang hiển thị", moreAvailable: "còn nữa", aboveReview: "tài khoản trên ngưỡng xem xét",
    account: "Tài khoản", score: "Điểm", trend: "Xu hướng", reasons: "Lý do",
    countries: "Nước đăng nhập", lastActivity: "Hoạt động cuối", case: "Vụ việc",
    new: "mới", review: "xem xét", hold: "giữ lại", allow: "cho qua",
    none: "chưa có", open: "mở", under_review: "đang xem xét",
    freeze_requested: "đề nghị phong tỏa", frozen: "đã phong tỏa", release_requested: "đề nghị giải tỏa", released: "đã giải tỏa",
    closed: "đã đóng", confirmed_fraud: "xác nhận gian lận", confirmed_mule: "xác nhận tài khoản la",
    false_positive: "báo động nhầm", account_takeover: "chiếm tài khoản",
    shell_business: "doanh nghiệp vỏ bọc", mule: "tài khoản la (mule)", scam_victim: "nạn nhân lừa đảo",
    unusual_activity: "hoạt động bất thường",
    overview: "Tổng quan", network: "Mạng lưới", why: "Vì sao", payments: "Giao dịch gần đây",
    logins: "Đăng nhập", counterparties: "Đối tác", profile: "Hồ sơ", customer: "Khách hàng",
    opened: "Mở ngày", kyc: "Quốc gia KYC", riskTimeline: "Rủi ro, giao dịch và đăng nhập theo thời gian",
    foreignLogin: "đăng nhập nước ngoài", domesticLogin: "đăng nhập trong nước",
    paymentIn: "tiền vào", paymentOut: "tiền ra", risk: "rủi ro",
    openCase: "Mở vụ việc", note: "Ghi chú / lý do", noteNeeded: "Cần ghi chú cho quyết định",
    outcome: "Kết luận", caseHistory: "Lịch sử vụ việc", who: "Ai", when: "Khi nào",
    move: "Chuyển", to_under_review: "Bắt đầu xem xét", to_freeze_requested: "Đề nghị phong tỏa",
    to_frozen: "Duyệt phong tỏa", to_released: "Duyệt giải tỏa",
    to_release_requested: "Đề nghị giải tỏa", to_frozen_from_release: "Từ chối giải tỏa", to_closed: "Đóng vụ việc",
    to_under_review_from_freeze: "Từ chối phong tỏa",
    makerChecker: "Người đề nghị phong tỏa không thể tự duyệt: cần người thứ hai.",
    assignee: "Người xử lý", assignMe: "Nhận xử lý", assignTo: "Giao cho", unassigned: "chưa giao",
    mine: "Vụ việc của tôi", approval: "Chờ tôi duyệt", unassignedQ: "Chưa giao",
    active: "Đang xử lý", overdue: "Quá hạn", inState: "Trong trạng thái", deadline: "Hạn",
    bulkAssign: "Giao các vụ đã chọn", bulkClose: "Đóng các vụ đã chọn là báo động nhầm",
    selected: "đã chọn", noItems: "Không có mục nào.", version: "Phiên bản",
    thresholds: "Ngưỡng đang áp dụng", override: "do vận hành đặt (ghi đè ngưỡng của mô hình",
    meaningReview: "xem xét: giao dịch vẫn đi, tài khoản vào danh sách cho điều tra viên.",
    meaningHold: "giữ lại: giao dịch bị tạm giữ chờ người xem xét; đây là tiền được chặn.",
    histogram: "Phân bố điểm rủi ro hiện tại của các tài khoản", metrics: "Chỉ số kiểm thử",
    policeReport: "Báo cáo tài khoản đáng ngờ cho công an (mục 9a)",
    resultsReport: "Báo cáo kết quả định kỳ (6 và 12 tháng)", from: "Từ", to: "Đến",
    download: "Tải về", downloaded: "Đã tải", role: "Vai trò", networkHelp:
      "Đỏ: trên ngưỡng xem xét; viền đậm: có vụ việc; xám: tài khoản ngân hàng khác; nét đứt tím: dùng chung thiết bị; chấm xanh: dùng chung IP. Nhấn một tài khoản để mở.",
    saved: "Đã lưu", state: "Trạng thái", openedBy: "Người mở", actions: "Thao tác",
    people: "Người", language: "EN", notFound: "Không tìm thấy", loading: "Đang tải…",
    noCaseYet: "Chưa có vụ việc cho tài khoản này.", viewerOnly: "Vai trò xem: chỉ đọc.",
    accountsAbove: "tài khoản", amount: "Số tiền", direction: "Chiều", decision: "Quyết định",
    ip: "IP", device: "Thiết bị", success: "Thành công", failed: "thất bại", ok: "được",
    moneyMoved: "tiền", sharedDevice: "chung thiết bị", sharedIp: "chung IP", hop: "bậc",
    appSignals: "Tín hiệu ứng dụng", onCall: "đang trong cuộc gọi", noCall: "không có cuộc gọi",
    callNotReported: "cuộc gọi: không báo", remoteAccess: "có ứng dụng điều khiển từ xa",
    noRemoteAccess: "không điều khiển từ xa", remoteNotReported: "điều khiển từ xa: không báo",
    notReported: "ứng dụng không báo",
    notReportedHelp: "Không có phiên ứng dụng di động (quầy, API, ngân hàng trực tuyến, tiền vào): không báo không có nghĩa là không.",
    remoteAccessHelp: "Ứng dụng điều khiển từ xa hoặc chia sẻ màn hình (AnyDesk, TeamViewer, UltraViewer…) đang chạy khi chuyển tiền",
  },
  en: {
    title: "Cảnh Giác — high-risk accounts", login: "Sign in", key: "API key",
    keyHelp: "A key from your administrator: canhgiac keys create --role investigator --name NAME",
    signIn: "Sign in", signOut: "Sign out", accounts: "Accounts", queues: "Queues",
    model: "Model", reports: "Reports", search: "Find account…", go: "Open",
    minScore: "Min score", type: "Type", any: "any", personal: "personal",
    business: "business", unknown: "unknown", foreignOnly: "foreign logins only",
    caseStatus: "Case", typology: "Typology", load: "Filter", more: "More",
    view9a: "Item 9a: businesses logging in from abroad", atReview: "From review threshold",
    shown: "shown", moreAvailable: "more available", aboveReview: "accounts above the review threshold",
    account: "Account", score: "Score", trend: "Trend", reasons: "Reasons",
    countries: "Login countries", lastActivity: "Last activity", case: "Case",
    new: "new", review: "review", hold: "hold", allow: "allow",
    none: "none", open: "open", under_review: "under review",
    freeze_requested: "freeze requested", frozen: "frozen", release_requested: "release requested", released: "released",
    closed: "closed", confirmed_fraud: "confirmed fraud", confirmed_mule: "confirmed mule",
    false_positive: "false positive", account_takeover: "account takeover",
    shell_business: "shell business", mule: "mule", scam_victim: "scam victim",
    unusual_activity: "unusual activity",
    overview: "Overview", network: "Network", why: "Why", payments: "Recent payments",
    logins: "Logins", counterparties: "Counterparties", profile: "Profile", customer: "Customer",
    opened: "Opened", kyc: "KYC country", riskTimeline: "Risk, payments and logins over time",
    foreignLogin: "foreign login", domesticLogin: "domestic login",
    paymentIn: "money in", paymentOut: "money out", risk: "risk",
    openCase: "Open a case", note: "Note / reason", noteNeeded: "A decision needs a note",
    outcome: "Outcome", caseHistory: "Case history", who: "Who", when: "When",
    move: "Move", to_under_review: "Start review", to_freeze_requested: "Request freeze",
    to_frozen: "Approve freeze", to_released: "Approve release",
    to_release_requested: "Request release", to_frozen_from_release: "Reject release", to_closed: "Close case",
    to_under_review_from_freeze: "Reject freeze",
    makerChecker: "Whoever requested the freeze cannot approve it: a second person must.",
    assignee: "Assignee", assignMe: "Take it", assignTo: "Assign to", unassigned: "unassigned",
    mine: "My cases", approval: "Waiting for my approval", unassignedQ: "Unassigned",
    active: "All active", overdue: "Overdue", inState: "In state", deadline: "Deadline",
    bulkAssign: "Assign selected", bulkClose: "Close selected as false positives",
    selected: "selected", noItems: "Nothing here.", version: "Version",
    thresholds: "Thresholds in force", override: "set by the operator (overrides the model's",
    meaningReview: "review: the payment goes through; the account is listed for investigators.",
    meaningHold: "hold: the payment is held until a person looks at it; this is money stopped.",
    histogram: "Accounts by current risk score", metrics: "Test metrics",
    policeReport: "Suspicious-accounts report for the police (item 9a)",
    resultsReport: "Periodic results report (6 and 12 months)", from: "From", to: "To",
    download: "Download", downloaded: "Downloaded", role: "Role", networkHelp:
      "Red: above the review threshold; thick border: has a case; grey: another bank's account; purple dashes: shared device; green dots: shared IP. Click an account to open it.",
    saved: "Saved", state: "State", openedBy: "Opened by", actions: "Actions",
    people: "People", language: "VI", notFound: "Not found", loading: "Loading…",
    noCaseYet: "No case on this account yet.", viewerOnly: "Viewer role: read only.",
    accountsAbove: "accounts", amount: "Amount", direction: "Direction", decision: "Decision",
    ip: "IP", device: "Device", success: "Success", failed: "failed", ok: "ok",
    moneyMoved: "money", sharedDevice: "shared device", sharedIp: "shared IP", hop: "hop",
    appSignals: "App signals", onCall: "on a call", noCall: "no call",
    callNotReported: "call: not reported", remoteAccess: "remote-access app running",
    noRemoteAccess: "no remote access", remoteNotReported: "remote access: not reported",
    notReported: "not reported by the app",
    notReportedHelp: "No mobile-app session (branch, API, internet banking, money in): not reported does not mean no.",
    remoteAccessHelp: "A remote-access or screen-sharing app (AnyDesk, TeamViewer, UltraViewer…) running during the transfer",
  },
};

export function lang() {
  return localStorage.getItem("cg-lang") === "en" ? "en" : "vi";
}

export function setLang(value) {
  localStorage.setItem("cg-lang", value);
}

export function t(key) {
  const table = LABELS[lang()];
  return key in table ? table[key] : (LABELS.vi[key] ?? String(key));
}

const TZ = "Asia/Ho_Chi_Minh";

// an RFC 3339 time as local Vietnamese time, to the minute (seconds when asked)
export function when(iso, seconds = false) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return new Intl.DateTimeFormat(lang() === "vi" ? "vi-VN" : "en-GB", {
    timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
    minute: "2-digit", ...(seconds ? { second: "2-digit" } : {}),
  }).format(d);
}

export function money(n) {
  return Number(n || 0).toLocaleString(lang() === "vi" ? "vi-VN" : "en-US",
    { maximumFractionDigits: 0 });
}

export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return s + " s";
  if (s < 3600) return Math.round(s / 60) + " min";
  if (s < 86400) return (s / 3600).toFixed(1) + " h";
  return (s / 86400).toFixed(1) + " d";
}
