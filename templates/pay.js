// The payment page's live status (loaded by pay.html; no inline script, for the CSP):
// Live status without reloading: poll the payment and update the page in place.
(function () {
  var el = document.getElementById('pay-status');
  if (!el) return;
  var code = encodeURIComponent(el.dataset.code);
  var cd = document.getElementById('countdown');
  var labels = {pending: 'Chờ chuyển khoản', underpaid: 'Đã nhận một phần', paid: 'Đã thanh toán',
    expired: 'Hết hạn thanh toán', refund_due: 'Chờ hoàn tiền', refunded: 'Đã hoàn tiền'};
  var vnd = function (n) { return new Intl.NumberFormat('vi-VN').format(n) + ' ₫'; };
  var show = function (id, on) { var e = document.getElementById(id); if (e) { e.hidden = !on; } };
  var set = function (id, text) { var e = document.getElementById(id); if (e) { e.textContent = text; } };
  var timer = null, poller = null;
  // Copy buttons beside the account number, the amount and the transfer content (only with
  // JavaScript: without it the text is there to select by hand).
  function addCopy(target) {
    var old = target.parentNode.querySelector('button.copy-btn');
    if (old) { old.remove(); }
    var b = document.createElement('button');
    b.type = 'button';
    b.className = 'copy-btn secondary';
    b.textContent = 'Sao chép';
    b.setAttribute('aria-label', 'Sao chép ' + target.dataset.copy);
    b.addEventListener('click', function () {
      var text = target.dataset.copy;
      var done = function () { b.textContent = 'Đã chép'; setTimeout(function () { b.textContent = 'Sao chép'; }, 2000); };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(done, function () { b.textContent = 'Hãy chép bằng tay'; });
      } else {
        b.textContent = 'Hãy chép bằng tay';
      }
    });
    // Beside the value, never inside it: the value's text stays what it says.
    target.insertAdjacentElement('afterend', b);
  }
  Array.prototype.forEach.call(document.querySelectorAll('[data-copy]'), addCopy);
  function tick() {
    if (!cd) return;
    var left = Math.max(0, Math.floor((Number(cd.dataset.expires) - Date.now()) / 1000));
    cd.textContent = '(còn ' + Math.floor(left / 60) + ' phút ' + (left % 60) + ' giây)';
  }
  function apply(p) {
    if (!p.status) return;
    el.dataset.status = p.status;
    el.textContent = labels[p.status] || p.status;
    if (p.status === 'underpaid') {
      show('pay-partial', true);
      set('pay-paid', vnd(p.amount_paid_vnd));
      set('pay-remaining', vnd(p.amount_remaining_vnd));
      set('pay-amount', vnd(p.amount_remaining_vnd));
      var amountEl = document.getElementById('pay-amount');
      if (amountEl) { amountEl.dataset.copy = String(p.amount_remaining_vnd); addCopy(amountEl); }
      var qr = document.querySelector('.qr');
      if (qr && qr.dataset.paid !== String(p.amount_paid_vnd)) {
        // the QR now asks for what is still missing
        qr.dataset.paid = String(p.amount_paid_vnd);
        qr.innerHTML = '<img alt="Mã VietQR" src="/pay/' + code + '/qr.svg?paid=' + p.amount_paid_vnd + '">';
      }
    } else if (p.status !== 'pending') {
      show('pay-pending', false);
      show('pay-done', p.status === 'paid');
      if (p.status !== 'paid') { location.reload(); }
      clearInterval(timer); clearInterval(poller);
    }
  }
  function poll() {
    fetch('/api/v1/payments/' + code, {cache: 'no-store'})
      .then(function (r) { return r.json(); }).then(apply).catch(function () {});
  }
  if (el.dataset.status === 'pending' || el.dataset.status === 'underpaid') {
    tick(); timer = setInterval(tick, 1000); poller = setInterval(poll, 3000);
  }
})();
