"""The portal's words in Kazakh, Russian and English: TEXT[lang][key].

Plain text except where a value carries {placeholders} that portal.py fills
in (already HTML-escaped). Keep the three languages in step: a key missing in
one language falls back to English.
"""

LANG_NAMES = (("kk", "Қазақша"), ("ru", "Русский"), ("en", "English"))

TEXT = {
    "en": {
        "button_mt": "Open Telegram with the MTProto proxy",
        "mt_hint": "If the first button does not work, tap the second (MTProto): Telegram's own proxy kind. "
        "It is harder to block but carries no calls.",
        "qr_mt": "The code of the MTProto proxy:",
        "mt_manual": "MTProto proxy link (Telegram → Settings → Data and Storage → Proxy → Add Proxy → MTProto):",
        "clock": "Device clock",
        "clock_ok": "set",
        "clock_note": "The device does not know the time yet, so the MTProto proxy may not connect. "
        "The SOCKS5 button works without it.",
        "hours": "h",
        "minutes": "min",
        "mb": "MB",
        "left_today": "Data left for everyone today",
        "your_left": "Your share left today",
        "no_limit": "no limit",
        "stage_exhausted": "Today's data is used up. Messages will pass again tomorrow.",
        "stage_small": "Data is running low: only messages pass now, no videos or large files.",
        "stage_slow": "Data is running low: large downloads are slowed down.",
        "quota_used": "This phone has used its share for today. It renews tomorrow.",
        "title": "Relay: Telegram on this Wi-Fi",
        "lead": "This Wi-Fi does not give open internet. It lets Telegram work through a proxy on this small device.",
        "button": "Open Telegram with this proxy",
        "button_hint": "Telegram will ask about the proxy: tap “Connect proxy”.",
        "no_link": "Nothing happened? This sign-in window may block the link. Open {url} in your usual browser "
        "(Chrome, Safari) and tap the button there.",
        "qr": "Or scan this code with the camera of another phone on this Wi-Fi:",
        "manual": "Set it up by hand",
        "manual_steps": "Telegram → Settings → Data and Storage → Proxy → Add Proxy → SOCKS5, then enter:",
        "server": "Server",
        "port": "Port",
        "user": "Username",
        "password": "Password",
        "http_proxy": "Browsers and computers can also use the HTTP proxy {addr}.",
        "about": "What this is",
        "about_text": "Relay is a small device set up by volunteers. It shares one connection to the outside world "
        "with everyone nearby, so that Telegram keeps working while the internet is shut down. It carries only "
        "Telegram and the services its owners chose; other sites will not open.",
        "privacy": "It keeps no logs: it does not record who you are, what you read or whom you write to. It stores "
        "only totals (how many people, how many bytes); where each phone has a daily share, its count stays in "
        "memory and is gone when the relay restarts. Telegram encrypts your messages itself; the relay cannot "
        "read them.",
        "share": "The connection is shared and slow: please do not send large videos, so that everyone gets through.",
        "continue": "Continue",
        "continue_hint": "Tap “Continue” so that your phone stays on this Wi-Fi.",
        "done": "Done. Stay on this Wi-Fi and open Telegram.",
        "back": "Back to the setup page",
        "status": "Relay status",
        "uplink": "Connection to the outside world",
        "up": "working",
        "down": "down",
        "unknown": "unknown",
        "people": "People on the relay now",
        "path": "Way out now",
        "path_none": "none works now",
        "via": "The outside connection goes through",
        "via_self": "this device",
        "admin": "Relay admin",
        "counters": "Counters",
        "restart": "Restart the relay",
        "lead_messengers": "This Wi-Fi does not give open internet. It lets Telegram, Signal and WhatsApp work "
        "through a proxy on this small device.",
        "lead_open": "This Wi-Fi reaches the internet only through a proxy on this small device. For Telegram, "
        "one tap below sets it up.",
        "about_text_messengers": "Relay is a small device set up by volunteers. It shares one connection to the "
        "outside world with everyone nearby, so that messengers keep working while the internet is shut down. It "
        "carries Telegram, Signal, WhatsApp and the services its owners chose; other sites will not open.",
        "about_text_open": "Relay is a small device set up by volunteers. It shares one connection to the outside "
        "world with everyone nearby, so that Telegram keeps working while the internet is shut down. Other sites "
        "open through its proxy too, but everyone shares the same slow connection.",
        "open_link": "Open Telegram",
        "err_bad_request": "This is not a request for a web page. The setup page is {url}",
        "err_method": "Here you can only open pages. The setup page is {url}",
        "err_admin_off": "The admin page is off: no admin password is set on this relay.",
        "err_admin_password": "The admin page needs the relay's admin password.",
        "err_admin_wifi": "The admin page is not served on the Wi-Fi: open it on the wired side or use the console.",
        "err_admin_host": "Ask for this page by the relay's address or name.",
        "err_admin_wait": "Too many wrong passwords: wait a little, or use the wired side or the console.",
        "err_admin_cross": "A page elsewhere cannot restart the relay.",
        "err_admin_token": "Open the admin page again and use its button.",
        "admin_restarting": "Restarting: the relay is back in a few seconds.",
        "err_not_here": "There is no such page here. The setup page is {url}",
    },
    "ru": {
        "button_mt": "Открыть Telegram с MTProto-прокси",
        "mt_hint": "Если первая кнопка не сработала, нажмите вторую (MTProto): собственный тип прокси Telegram. "
        "Его труднее заблокировать, но звонки через него не идут.",
        "qr_mt": "Код MTProto-прокси:",
        "mt_manual": "Ссылка на MTProto-прокси (Telegram → Настройки → Данные и память → Прокси → "
        "Добавить прокси → MTProto):",
        "clock": "Часы устройства",
        "clock_ok": "установлены",
        "clock_note": "Устройство пока не знает точного времени, поэтому MTProto-прокси может не подключиться. "
        "Кнопка SOCKS5 работает и без этого.",
        "hours": "ч",
        "minutes": "мин",
        "mb": "МБ",
        "left_today": "Осталось трафика на всех сегодня",
        "your_left": "Ваша доля на сегодня",
        "no_limit": "без ограничения",
        "stage_exhausted": "Трафик на сегодня закончился. Сообщения снова пойдут завтра.",
        "stage_small": "Трафик на исходе: сейчас проходят только сообщения, без видео и больших файлов.",
        "stage_slow": "Трафик на исходе: большие загрузки замедлены.",
        "quota_used": "Этот телефон израсходовал свою долю на сегодня. Завтра она обновится.",
        "title": "Relay: Telegram через этот Wi-Fi",
        "lead": "Этот Wi-Fi не даёт открытого интернета. Через него работает Telegram — с помощью прокси "
        "на этом небольшом устройстве.",
        "button": "Открыть Telegram с этим прокси",
        "button_hint": "Telegram спросит про прокси: нажмите «Подключить прокси».",
        "no_link": "Ничего не произошло? Окно входа в сеть может блокировать ссылку. Откройте {url} в обычном "
        "браузере (Chrome, Safari) и нажмите кнопку там.",
        "qr": "Или отсканируйте этот код камерой другого телефона, подключённого к этому Wi-Fi:",
        "manual": "Настроить вручную",
        "manual_steps": "Telegram → Настройки → Данные и память → Прокси → Добавить прокси → SOCKS5, затем введите:",
        "server": "Сервер",
        "port": "Порт",
        "user": "Имя пользователя",
        "password": "Пароль",
        "http_proxy": "Браузеры и компьютеры могут также использовать HTTP-прокси {addr}.",
        "about": "Что это такое",
        "about_text": "Relay — небольшое устройство, которое установили волонтёры. Оно делит одно подключение "
        "к внешнему миру между всеми, кто рядом, чтобы Telegram работал, пока интернет отключён. Через него "
        "работают только Telegram и сервисы, выбранные владельцами устройства; другие сайты не откроются.",
        "privacy": "Устройство не ведёт журналов: оно не записывает, кто вы, что вы читаете и кому пишете. Оно "
        "хранит только общие цифры (сколько людей, сколько байт); если у телефонов есть дневная доля, её счёт "
        "держится только в памяти и пропадает при перезапуске. Сообщения шифрует сам Telegram, устройство "
        "не может их прочитать.",
        "share": "Канал общий и медленный: пожалуйста, не отправляйте большие видео, чтобы хватило всем.",
        "continue": "Продолжить",
        "continue_hint": "Нажмите «Продолжить», чтобы телефон не отключался от этого Wi-Fi.",
        "done": "Готово. Оставайтесь в этом Wi-Fi и откройте Telegram.",
        "back": "Вернуться к настройке",
        "status": "Состояние устройства",
        "uplink": "Связь с внешним миром",
        "up": "работает",
        "down": "нет связи",
        "unknown": "неизвестно",
        "people": "Сейчас подключено людей",
        "path": "Путь наружу сейчас",
        "path_none": "сейчас ни один не работает",
        "via": "Связь с внешним миром идёт через",
        "via_self": "это устройство",
        "admin": "Управление устройством",
        "counters": "Счётчики",
        "restart": "Перезапустить устройство",
        "lead_messengers": "Этот Wi-Fi не даёт открытого интернета. Через него работают Telegram, Signal и "
        "WhatsApp — с помощью прокси на этом небольшом устройстве.",
        "lead_open": "Этот Wi-Fi выходит в интернет только через прокси на этом небольшом устройстве. Для Telegram "
        "его настраивает одно нажатие ниже.",
        "about_text_messengers": "Relay — небольшое устройство, которое установили волонтёры. Оно делит одно "
        "подключение к внешнему миру между всеми, кто рядом, чтобы мессенджеры работали, пока интернет отключён. "
        "Через него работают Telegram, Signal, WhatsApp и сервисы, выбранные владельцами устройства; другие сайты "
        "не откроются.",
        "about_text_open": "Relay — небольшое устройство, которое установили волонтёры. Оно делит одно подключение "
        "к внешнему миру между всеми, кто рядом, чтобы Telegram работал, пока интернет отключён. Через его прокси "
        "открываются и другие сайты, но канал один на всех и медленный.",
        "open_link": "Открыть Telegram",
        "err_bad_request": "Это не запрос веб-страницы. Страница настройки: {url}",
        "err_method": "Здесь можно только открывать страницы. Страница настройки: {url}",
        "err_admin_off": "Страница управления отключена: на устройстве не задан пароль администратора.",
        "err_admin_password": "Для страницы управления нужен пароль администратора устройства.",
        "err_admin_wifi": "Страница управления не открывается через Wi-Fi: откройте её по проводу или через консоль.",
        "err_admin_host": "Откройте эту страницу по адресу или имени устройства.",
        "err_admin_wait": "Слишком много неверных паролей: подождите или войдите по проводу или через консоль.",
        "err_admin_cross": "Чужая страница не может перезапустить устройство.",
        "err_admin_token": "Откройте страницу управления заново и нажмите её кнопку.",
        "admin_restarting": "Перезапуск: устройство вернётся через несколько секунд.",
        "err_not_here": "Такой страницы здесь нет. Страница настройки: {url}",
    },
    "kk": {
        "button_mt": "Telegram-ды MTProto-проксимен ашу",
        "mt_hint": "Бірінші түйме жұмыс істемесе, екіншісін (MTProto) басыңыз: Telegram-ның өз прокси түрі. "
        "Оны бұғаттау қиынырақ, бірақ ол арқылы қоңырау шалуға болмайды.",
        "qr_mt": "MTProto-проксидің коды:",
        "mt_manual": "MTProto-прокси сілтемесі (Telegram → Параметрлер (Настройки) → Деректер және жад "
        "(Данные и память) → Прокси → Прокси қосу (Добавить прокси) → MTProto):",
        "clock": "Құрылғы сағаты",
        "clock_ok": "орнатылған",
        "clock_note": "Құрылғы әзірге нақты уақытты білмейді, сондықтан MTProto-прокси қосылмауы мүмкін. "
        "SOCKS5 түймесі онсыз да жұмыс істейді.",
        "hours": "сағ",
        "minutes": "мин",
        "mb": "МБ",
        "left_today": "Бүгін барлығына қалған трафик",
        "your_left": "Бүгінгі үлесіңізден қалғаны",
        "no_limit": "шектеусіз",
        "stage_exhausted": "Бүгінгі трафик таусылды. Хабарламалар ертең қайта жүреді.",
        "stage_small": "Трафик таусылып барады: қазір тек хабарламалар өтеді, бейне мен үлкен файлдар өтпейді.",
        "stage_slow": "Трафик таусылып барады: үлкен жүктеулер баяулатылды.",
        "quota_used": "Бұл телефон бүгінгі үлесін пайдаланып болды. Ертең қайта жаңарады.",
        "title": "Relay: осы Wi-Fi арқылы Telegram",
        "lead": "Бұл Wi-Fi ашық интернет бермейді. Ол арқылы Telegram осы шағын құрылғыдағы прокси көмегімен "
        "жұмыс істейді.",
        "button": "Telegram-ды осы проксимен ашу",
        "button_hint": "Telegram прокси туралы сұрайды: «Connect proxy» («Подключить прокси») түймесін басыңыз.",
        "no_link": "Ештеңе болмады ма? Желіге кіру терезесі сілтемені бұғаттауы мүмкін. Әдеттегі браузерде "
        "(Chrome, Safari) {url} мекенжайын ашып, түймені сол жерден басыңыз.",
        "qr": "Немесе осы Wi-Fi-ға қосылған басқа телефонның камерасымен мына кодты сканерлеңіз:",
        "manual": "Қолмен баптау",
        "manual_steps": "Telegram → Параметрлер (Настройки) → Деректер және жад (Данные и память) → Прокси → "
        "Прокси қосу (Добавить прокси) → SOCKS5, содан кейін мыналарды енгізіңіз:",
        "server": "Сервер",
        "port": "Порт",
        "user": "Пайдаланушы аты",
        "password": "Құпиясөз",
        "http_proxy": "Браузерлер мен компьютерлерде {addr} мекенжайындағы HTTP-проксиді де қолдануға болады.",
        "about": "Бұл не?",
        "about_text": "Relay — еріктілер орнатқан шағын құрылғы. Интернет өшірілген кезде Telegram жұмыс істей "
        "беруі үшін ол сыртқы әлеммен бір байланысты маңайдағылардың бәріне бөліп береді. Ол арқылы тек "
        "Telegram мен құрылғы иелері таңдаған қызметтер ғана жұмыс істейді; басқа сайттар ашылмайды.",
        "privacy": "Құрылғы журнал жүргізбейді: сіздің кім екеніңізді, не оқитыныңызды және кімге жазатыныңызды "
        "жазып алмайды. Ол тек жалпы сандарды (қанша адам, қанша байт) сақтайды; телефондарға күндік үлес берілсе, оның "
        "есебі тек жадта тұрады және құрылғы қайта іске қосылғанда өшеді. Хабарламаларыңызды Telegram "
        "өзі шифрлайды, құрылғы оларды оқи алмайды.",
        "share": "Байланыс ортақ әрі баяу: барлығына жетуі үшін үлкен бейнелерді жібермеуіңізді сұраймыз.",
        "continue": "Жалғастыру",
        "continue_hint": "Телефон осы Wi-Fi-дан ажырап қалмауы үшін «Жалғастыру» түймесін басыңыз.",
        "done": "Дайын. Осы Wi-Fi-дан ажырамай, Telegram-ды ашыңыз.",
        "back": "Баптау бетіне оралу",
        "status": "Құрылғы күйі",
        "uplink": "Сыртқы әлеммен байланыс",
        "up": "жұмыс істеп тұр",
        "down": "байланыс жоқ",
        "unknown": "белгісіз",
        "people": "Қазір қолданып отырған адамдар",
        "path": "Қазіргі сыртқа шығу жолы",
        "path_none": "қазір ешқайсысы жұмыс істемейді",
        "via": "Сыртқы байланыс өтетін құрылғы",
        "via_self": "осы құрылғы",
        "admin": "Құрылғыны басқару",
        "counters": "Есептегіштер",
        "restart": "Құрылғыны қайта іске қосу",
        "lead_messengers": "Бұл Wi-Fi ашық интернет бермейді. Ол арқылы Telegram, Signal және WhatsApp осы шағын "
        "құрылғыдағы прокси көмегімен жұмыс істейді.",
        "lead_open": "Бұл Wi-Fi интернетке тек осы шағын құрылғыдағы прокси арқылы шығады. Telegram үшін оны "
        "төмендегі бір түйме баптайды.",
        "about_text_messengers": "Relay — еріктілер орнатқан шағын құрылғы. Интернет өшірілген кезде мессенджерлер "
        "жұмыс істей беруі үшін ол сыртқы әлеммен бір байланысты маңайдағылардың бәріне бөліп береді. Ол арқылы "
        "Telegram, Signal, WhatsApp және құрылғы иелері таңдаған қызметтер жұмыс істейді; басқа сайттар ашылмайды.",
        "about_text_open": "Relay — еріктілер орнатқан шағын құрылғы. Интернет өшірілген кезде Telegram жұмыс істей "
        "беруі үшін ол сыртқы әлеммен бір байланысты маңайдағылардың бәріне бөліп береді. Оның проксиі арқылы "
        "басқа сайттар да ашылады, бірақ баяу байланыс бәріне ортақ.",
        "open_link": "Telegram-ды ашу",
        "err_bad_request": "Бұл веб-бет сұрауы емес. Баптау беті: {url}",
        "err_method": "Мұнда тек беттерді ашуға болады. Баптау беті: {url}",
        "err_admin_off": "Басқару беті өшірулі: құрылғыда әкімші құпиясөзі орнатылмаған.",
        "err_admin_password": "Басқару бетіне құрылғының әкімші құпиясөзі керек.",
        "err_admin_wifi": "Басқару беті Wi-Fi арқылы ашылмайды: оны сым арқылы немесе консольден ашыңыз.",
        "err_admin_host": "Бұл бетті құрылғының мекенжайы немесе аты арқылы ашыңыз.",
        "err_admin_wait": "Қате құпиясөз тым көп: біраз күтіңіз немесе сым арқылы не консольден кіріңіз.",
        "err_admin_cross": "Басқа бет құрылғыны қайта іске қоса алмайды.",
        "err_admin_token": "Басқару бетін қайта ашып, оның батырмасын басыңыз.",
        "admin_restarting": "Қайта іске қосылуда: құрылғы бірнеше секундтан кейін оралады.",
        "err_not_here": "Мұнда мұндай бет жоқ. Баптау беті: {url}",
    },
}
